"""Django's date formats for this project (FORMAT_MODULE_PATH): every date and time Django itself shows —
the admin's detail pages, filters, history — is ISO-like and carries its zone's name, as finalesync/texts.py
writes them ("2026-11-29 14:35:07 CET"), never the zone-less "Nov. 29, 2026, 2:35 p.m."."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
