// Avro interoperability check for the Python codec (tests/schemas/test_java_interop.py).
//
// Usage: java -cp <avro classpath>:<classes compiled by ECJ> AvroInterop <schema dir> <work dir>
// For every <schema dir>/*.avsc it prints "FP <full name> <SchemaNormalization.parsingFingerprint64>".
// For every <work dir>/<full name>.py.bin (messages framed by a 4-byte big-endian length) it
// decodes each message with BinaryMessageDecoder, re-encodes it with BinaryMessageEncoder and
// writes <work dir>/<full name>.java.bin in the same framing, then prints "OK <full name> <count>".
// One JVM for all schemas keeps the test fast.

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

public class AvroInterop {
    public static void main(String[] args) throws Exception {
        File schemaDir = new File(args[0]);
        File workDir = new File(args[1]);
        File[] files = schemaDir.listFiles((dir, name) -> name.endsWith(".avsc"));
        Arrays.sort(files);
        for (File file : files) {
            // A fresh parser per file: every file defines its enums inline.
            Schema schema = new Schema.Parser().parse(file);
            String name = schema.getFullName();
            System.out.println("FP " + name + " " + SchemaNormalization.parsingFingerprint64(schema));
            File in = new File(workDir, name + ".py.bin");
            if (!in.exists()) {
                continue;
            }
            BinaryMessageDecoder<GenericRecord> decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
            BinaryMessageEncoder<GenericRecord> encoder = new BinaryMessageEncoder<>(GenericData.get(), schema);
            int count = 0;
            try (DataInputStream input = new DataInputStream(new FileInputStream(in));
                 DataOutputStream output = new DataOutputStream(
                     new FileOutputStream(new File(workDir, name + ".java.bin")))) {
                while (true) {
                    int length;
                    try {
                        length = input.readInt();
                    } catch (EOFException end) {
                        break;
                    }
                    byte[] message = new byte[length];
                    input.readFully(message);
                    GenericRecord record = decoder.decode(message);
                    ByteBuffer encoded = encoder.encode(record);
                    byte[] bytes = new byte[encoded.remaining()];
                    encoded.get(bytes);
                    output.writeInt(bytes.length);
                    output.write(bytes);
                    count++;
                }
            }
            System.out.println("OK " + name + " " + count);
        }
    }
}
