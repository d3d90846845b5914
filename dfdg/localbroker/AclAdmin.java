// ACLs and SCRAM users through Kafka's Admin API, for `dfdg acl` (dfdg/acl_admin.py).
//
// aiokafka has no ACL or SCRAM-user calls, and Kafka's AclCommand starts one JVM per resource;
// this runs one JVM for a whole sync. Usage:
//   java -cp <broker classpath> AclAdmin.java <client.properties>
// Commands come on stdin, one per line, fields separated by TAB (passwords never on argv):
//   list                                      -> "ACL <rtype> <name> <pattern> <principal> <host> <op> <perm>"
//   add|del <rtype> <name> <pattern> <principal> <host> <op> <perm>
//   scram <user> <mechanism> <password>       -> creates or replaces the user's SCRAM login
//   users                                     -> "USER <name> <mechanism>"
// Adds and deletes are batched and applied at end of input (or before the next list/users).
// Errors go to stderr as "ERROR <exception class>: <message>" with exit status 1.

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class AclAdmin {
    private static AclBinding binding(String[] f) {
        return new AclBinding(
            new ResourcePattern(ResourceType.fromString(f[1]), f[2], PatternType.fromString(f[3])),
            new AccessControlEntry(f[4], f[5], AclOperation.fromString(f[6]), AclPermissionType.fromString(f[7])));
    }

    private static void flush(Admin admin, List<AclBinding> adds, List<AclBinding> dels) throws Exception {
        if (!dels.isEmpty()) {
            List<AclBindingFilter> filters = new ArrayList<>();
            for (AclBinding b : dels) filters.add(b.toFilter());
            admin.deleteAcls(filters).all().get();
            dels.clear();
        }
        if (!adds.isEmpty()) {
            admin.createAcls(adds).all().get();
            adds.clear();
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        List<AclBinding> adds = new ArrayList<>();
        List<AclBinding> dels = new ArrayList<>();
        try (Admin admin = Admin.create(props);
             BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = stdin.readLine()) != null) {
                if (line.isBlank()) continue;
                String[] f = line.split("\t", -1);
                switch (f[0]) {
                    case "add" -> adds.add(binding(f));
                    case "del" -> dels.add(binding(f));
                    case "list" -> {
                        flush(admin, adds, dels);
                        for (AclBinding b : admin.describeAcls(AclBindingFilter.ANY).values().get()) {
                            ResourcePattern p = b.pattern();
                            AccessControlEntry e = b.entry();
                            System.out.println(String.join("\t", "ACL", p.resourceType().name(), p.name(),
                                p.patternType().name(), e.principal(), e.host(), e.operation().name(),
                                e.permissionType().name()));
                        }
                    }
                    case "scram" -> {
                        flush(admin, adds, dels);
                        ScramMechanism mech = ScramMechanism.fromMechanismName(f[2]);
                        admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                            f[1], new ScramCredentialInfo(mech, 8192), f[3]))).all().get();
                        System.out.println("SCRAM\t" + f[1] + "\t" + f[2]);
                    }
                    case "users" -> {
                        flush(admin, adds, dels);
                        Map<String, UserScramCredentialsDescription> users = admin.describeUserScramCredentials().all().get();
                        for (UserScramCredentialsDescription d : users.values()) {
                            for (ScramCredentialInfo i : d.credentialInfos()) {
                                System.out.println("USER\t" + d.name() + "\t" + i.mechanism().mechanismName());
                            }
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown command " + f[0]);
                }
            }
            flush(admin, adds, dels);
        } catch (Exception ex) {
            Throwable cause = ex.getCause() != null ? ex.getCause() : ex;
            System.err.println("ERROR " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
            System.exit(1);
        }
    }
}
