"""Policy data for stateless validation and the table of every error code.

Data, not logic: the official municipality codes, the allowed contact groups, the first-use
date of each absence type and the limits of R1.4/R1.5. Where the sources are silent the
choice is marked *assumption* and lives here only, so it can be changed in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from processors import bounds
from processors.events import AbsenceType

__all__ = [
    "ABSENCE_TYPE_FIRST_USE",
    "ABSENCE_TYPE_NOT_FOR_EDUCATION_BENEFIT",
    "CONTACT_GROUPS",
    "CV_DEADLINE_MAX_DAYS",
    "E101_NOT_SINGLE_OBJECT",
    "E102_UNKNOWN_SCHEMA",
    "E103_MALFORMED_BODY",
    "E104_UNRESOLVABLE_SCHEMA",
    "E105_UNKNOWN_RECORD_TYPE",
    "E106_UNENCODABLE_RECORD",
    "E107_NOT_AN_INGRESS_EVENT",
    "E108_WRONG_TOPIC",
    "E199_DECODE_FAILED",
    "E201_INVALID_CPR",
    "E202_INVALID_MUNICIPALITY",
    "E203_INVALID_CONTACT_GROUP",
    "E204_EARLY_TAKEOVER_AFTER_HANDOVER",
    "E205_CV_DEADLINE_TOO_LATE",
    "E206_CITIZEN_UNDER_15",
    "E207_ABSENCE_TYPE_NOT_YET_VALID",
    "E208_ABSENCE_TYPE_NOT_ALLOWED",
    "E209_END_BEFORE_START",
    "E210_INVALID_EVENT_ID",
    "E211_VALUE_TOO_LONG",
    "E212_DATE_OUT_OF_RANGE",
    "E213_CREATED_BEFORE_BIRTH",
    "E301_CITIZEN_DECEASED",
    "E302_UNKNOWN_CASE",
    "E303_CONTRACT_WITHOUT_GOAL",
    "E304_ABSENCE_NOT_DELETABLE",
    "E305_DATA_AREA_CLOSED",
    "E306_CASE_ALREADY_EXISTS",
    "E307_CITIZEN_ERASED",
    "E308_RECEIPT_MISMATCH",
    "E309_ARCHIVE_ANSWER_UNMATCHED",
    "E901_PROCESSING_FAILED",
    "ERROR_CODES",
    "LOCAL_TIMEZONE",
    "MINIMUM_AGE",
    "MUNICIPALITIES",
]

# --- Error codes: "<Ennn> <slug>", stable; they travel in the dlq.error.code header. -------------
# E1xx: the bytes cannot be decoded (schemas.codec). E2xx: the event breaks a stateless rule
# (processors.validation). E3xx: the event conflicts with what is known about the citizen.
E101_NOT_SINGLE_OBJECT = "E101 not-single-object"
E102_UNKNOWN_SCHEMA = "E102 unknown-schema"
E103_MALFORMED_BODY = "E103 malformed-body"
E104_UNRESOLVABLE_SCHEMA = "E104 unresolvable-schema"
E105_UNKNOWN_RECORD_TYPE = "E105 unknown-record-type"
E106_UNENCODABLE_RECORD = "E106 unencodable-record"
E201_INVALID_CPR = "E201 invalid-cpr"
E202_INVALID_MUNICIPALITY = "E202 invalid-municipality"
E203_INVALID_CONTACT_GROUP = "E203 invalid-contact-group"
E204_EARLY_TAKEOVER_AFTER_HANDOVER = "E204 early-takeover-after-handover"
E205_CV_DEADLINE_TOO_LATE = "E205 cv-deadline-too-late"
E206_CITIZEN_UNDER_15 = "E206 citizen-under-15"
E207_ABSENCE_TYPE_NOT_YET_VALID = "E207 absence-type-not-yet-valid"
E208_ABSENCE_TYPE_NOT_ALLOWED = "E208 absence-type-not-allowed"
E209_END_BEFORE_START = "E209 end-before-start"
E210_INVALID_EVENT_ID = "E210 invalid-event-id"
E211_VALUE_TOO_LONG = "E211 value-too-long"
E212_DATE_OUT_OF_RANGE = "E212 date-out-of-range"
E213_CREATED_BEFORE_BIRTH = "E213 created-before-birth"
E301_CITIZEN_DECEASED = "E301 citizen-deceased"
E302_UNKNOWN_CASE = "E302 unknown-case"
E303_CONTRACT_WITHOUT_GOAL = "E303 contract-without-goal"
E304_ABSENCE_NOT_DELETABLE = "E304 absence-not-deletable"
E305_DATA_AREA_CLOSED = "E305 data-area-closed"
E306_CASE_ALREADY_EXISTS = "E306 case-already-exists"
E307_CITIZEN_ERASED = "E307 citizen-erased"
E308_RECEIPT_MISMATCH = "E308 receipt-mismatch"
E309_ARCHIVE_ANSWER_UNMATCHED = "E309 archive-answer-unmatched"
E107_NOT_AN_INGRESS_EVENT = "E107 not-an-ingress-event"
E108_WRONG_TOPIC = "E108 wrong-topic"
E199_DECODE_FAILED = "E199 decode-failed"
E901_PROCESSING_FAILED = "E901 processing-failed"

ERROR_CODES: Mapping[str, str] = MappingProxyType({
    E101_NOT_SINGLE_OBJECT: "Not Avro single-object encoded (no C3 01 marker, or shorter than 10 bytes).",
    E102_UNKNOWN_SCHEMA: "The writer schema's fingerprint is not in the schema catalogue.",
    E103_MALFORMED_BODY: "The Avro body does not decode with the writer schema, or bytes are left over.",
    E104_UNRESOLVABLE_SCHEMA: "The writer schema cannot be resolved to the current reader schema (incompatible).",
    E105_UNKNOWN_RECORD_TYPE: "No Python class is registered for the record (or no schema for the class).",
    E106_UNENCODABLE_RECORD: "A record's values do not fit its schema, so it cannot be encoded.",
    E201_INVALID_CPR: "CPR is not 10 digits DDMMYYSSSS forming a real, past birth date (century from digit 7).",
    E202_INVALID_MUNICIPALITY: "Municipality code is not one of the 98 official Danish kommunekoder.",
    E203_INVALID_CONTACT_GROUP: "Contact group is not 17, 18, 19, 20 or 27 (R1.2).",
    E204_EARLY_TAKEOVER_AFTER_HANDOVER: "An early takeover date is later than the handover date (R1.3).",
    E205_CV_DEADLINE_TOO_LATE: "The CV update deadline is more than 60 days after the handover date (R1.4).",
    E206_CITIZEN_UNDER_15: "The citizen is under 15 on the creation date, minors' procedure not flagged (R1.5).",
    E207_ABSENCE_TYPE_NOT_YET_VALID: "The absence starts before its type's first-use date (R6.4).",
    E208_ABSENCE_TYPE_NOT_ALLOWED: "Absence type not allowed for the citizen (e.g. less intensive effort, R6.4).",
    E209_END_BEFORE_START: "The end date is before the start date.",
    E210_INVALID_EVENT_ID: "event_id is not a UUID, or a required id (case, absence, record, ...) is blank.",
    E211_VALUE_TOO_LONG: f"A string is longer than its bound (ids and codes {bounds.MAX_ID_LENGTH} characters, "
                         f"free text {bounds.MAX_TEXT_LENGTH:,}) or a list has more than {bounds.MAX_LIST_ITEMS} "
                         "items (processors.bounds).",
    E212_DATE_OUT_OF_RANGE: f"A date is before {bounds.EARLIEST_PLAUSIBLE_DATE.isoformat()} or more than "
                            f"{bounds.FACT_DATE_MAX_YEARS_AHEAD} years after today, or occurred_at is more than "
                            f"{bounds.OCCURRED_AT_MAX_DAYS_AHEAD} "
                            f"day{'s' * (bounds.OCCURRED_AT_MAX_DAYS_AHEAD != 1)} after today (processors.bounds).",
    E213_CREATED_BEFORE_BIRTH: "The case's creation date (occurred_at) is before the birth date in its CPR: one of "
                               "the two is wrong; checked before the age rule of R1.5.",
    E301_CITIZEN_DECEASED: "The citizen is deceased; no new facts are accepted (R7.3).",
    E302_UNKNOWN_CASE: "The event names a case the pipeline does not know for this citizen. Its topic and "
                       "case-created's have no order between them, so it can come before its case: replay it "
                       "once the case exists.",
    E303_CONTRACT_WITHOUT_GOAL: "The integration contract states neither an employment nor an education goal (R5.2).",
    E304_ABSENCE_NOT_DELETABLE: "The absence is unknown or of a type configured as not deletable (R6.2).",
    E305_DATA_AREA_CLOSED: "The data area has closed; nothing more is fetched for it (R2.3).",
    E306_CASE_ALREADY_EXISTS: "A case with this id already exists for the citizen with different facts.",
    E307_CITIZEN_ERASED: "The citizen was deleted and their key destroyed before this event was handled; it can "
                         "no longer be read, and nothing was done (R7).",
    E308_RECEIPT_MISMATCH: "An archive receipt does not name the checksum of the package that was delivered (or "
                           "no delivered package is known); it is refused, nothing is deleted, and the saga waits "
                           "for a matching receipt or an operator's dfdg archive retry, which delivers the package "
                           "again (R7.2).",
    E309_ARCHIVE_ANSWER_UNMATCHED: "An archive receipt, rejection or retry matches no archive saga: no saga is held "
                                   "for its key, its citizen_key is not its key, or its package_id is not the "
                                   "saga's; nothing was done (check the package id and citizen key, R7.2). A "
                                   "receipt or rejection can come before the death that starts its saga (the "
                                   "topics have no order between them): replay it once the saga exists.",
    E107_NOT_AN_INGRESS_EVENT: "The record is valid Avro but not an event publishers may send (see docs/events.md).",
    E108_WRONG_TOPIC: "The record's type is not the one its topic carries (each ingress topic carries one event "
                      "type, see the topics table); it was not acted on. Publish it on its own topic.",
    E199_DECODE_FAILED: "Decoding failed unexpectedly; report the dead letter's offset to the dfdg-stream team.",
    E901_PROCESSING_FAILED: "The worker could not process the event (a defect); kept for replay after the fix.",
})

# Dates are calendar dates in Europe/Copenhagen (DOMAIN.md).
LOCAL_TIMEZONE = "Europe/Copenhagen"

# R1.2: contact group (kontaktgruppe) -> meaning.
CONTACT_GROUPS: Mapping[int, str] = MappingProxyType({
    17: "Self-supporting, not employed",
    18: "Self-supporting foreigner in the integration programme",
    19: "Immigrant in the introduction course",
    20: "Employed",
    27: "Integration-benefit recipient in the integration programme",
})

# R1.4: the CV update deadline may be at most this many days after the handover date.
CV_DEADLINE_MAX_DAYS = 60

# R1.5: no case for a citizen younger than this on the creation date (unless the minors' procedure).
MINIMUM_AGE = 15

# R6.4: the first day an absence of each type may start. Types not listed have no limit.
ABSENCE_TYPE_FIRST_USE: Mapping[AbsenceType, date] = MappingProxyType({
    AbsenceType.LESS_INTENSIVE_EFFORT: date(2021, 3, 15),
    AbsenceType.EXEMPT_MINK_EDUCATION: date(2021, 3, 19),
    # *Assumption*: the sources give no date for bereavement leave (sorgorlov), only that it
    # rests on lov nr. 2189 of 29 Dec 2020, "in force" by release 2021-1. We take the law's
    # commencement, 1 Jan 2021, so absences back-dated to it are accepted.
    AbsenceType.BEREAVEMENT_LEAVE: date(2021, 1, 1),
})

# R6.4: absence types that education-benefit recipients (uddannelseshjælpsmodtagere) may not get.
ABSENCE_TYPE_NOT_FOR_EDUCATION_BENEFIT: frozenset[AbsenceType] = frozenset({AbsenceType.LESS_INTENSIVE_EFFORT})

# The 98 Danish municipalities (kommunekoder since 2007). 411 (Christiansø) is not a municipality.
MUNICIPALITIES: Mapping[str, str] = MappingProxyType({
    "101": "København", "147": "Frederiksberg", "151": "Ballerup", "153": "Brøndby", "155": "Dragør",
    "157": "Gentofte", "159": "Gladsaxe", "161": "Glostrup", "163": "Herlev", "165": "Albertslund",
    "167": "Hvidovre", "169": "Høje-Taastrup", "173": "Lyngby-Taarbæk", "175": "Rødovre", "183": "Ishøj",
    "185": "Tårnby", "187": "Vallensbæk", "190": "Furesø", "201": "Allerød", "210": "Fredensborg",
    "217": "Helsingør", "219": "Hillerød", "223": "Hørsholm", "230": "Rudersdal", "240": "Egedal",
    "250": "Frederikssund", "253": "Greve", "259": "Køge", "260": "Halsnæs", "265": "Roskilde",
    "269": "Solrød", "270": "Gribskov", "306": "Odsherred", "316": "Holbæk", "320": "Faxe",
    "326": "Kalundborg", "329": "Ringsted", "330": "Slagelse", "336": "Stevns", "340": "Sorø",
    "350": "Lejre", "360": "Lolland", "370": "Næstved", "376": "Guldborgsund", "390": "Vordingborg",
    "400": "Bornholm", "410": "Middelfart", "420": "Assens", "430": "Faaborg-Midtfyn", "440": "Kerteminde",
    "450": "Nyborg", "461": "Odense", "479": "Svendborg", "480": "Nordfyns", "482": "Langeland",
    "492": "Ærø", "510": "Haderslev", "530": "Billund", "540": "Sønderborg", "550": "Tønder",
    "561": "Esbjerg", "563": "Fanø", "573": "Varde", "575": "Vejen", "580": "Aabenraa",
    "607": "Fredericia", "615": "Horsens", "621": "Kolding", "630": "Vejle", "657": "Herning",
    "661": "Holstebro", "665": "Lemvig", "671": "Struer", "706": "Syddjurs", "707": "Norddjurs",
    "710": "Favrskov", "727": "Odder", "730": "Randers", "740": "Silkeborg", "741": "Samsø",
    "746": "Skanderborg", "751": "Aarhus", "756": "Ikast-Brande", "760": "Ringkøbing-Skjern", "766": "Hedensted",
    "773": "Morsø", "779": "Skive", "787": "Thisted", "791": "Viborg", "810": "Brønderslev",
    "813": "Frederikshavn", "820": "Vesthimmerlands", "825": "Læsø", "840": "Rebild", "846": "Mariagerfjord",
    "849": "Jammerbugt", "851": "Aalborg", "860": "Hjørring",
})
