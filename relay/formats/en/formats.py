"""Date formats for the admin (FORMAT_MODULE_PATH): timestamps to the second, year first, in UTC like the
API, instead of English's "Dec. 3, 2026, 10:15 p.m."."""

DATETIME_FORMAT = "Y-m-d H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
