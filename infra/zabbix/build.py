#!/usr/bin/env python3
"""Writes alert_intake_media_type.yaml (a Zabbix 5.0 export, which Zabbix 5.0
to 7.x import) from alert-intake.js. tests/zabbix_media_type.rs checks that
the two agree. Run from this folder: python3 build.py"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PARAMS = [
    ("URL", "{ALERT.SENDTO}"),
    ("alert_message", "{ALERT.MESSAGE}"),
    ("alert_subject", "{ALERT.SUBJECT}"),
    ("event_date", "{EVENT.DATE}"),
    ("event_id", "{EVENT.ID}"),
    ("event_name", "{EVENT.NAME}"),
    ("event_nseverity", "{EVENT.NSEVERITY}"),
    ("event_recovery_date", "{EVENT.RECOVERY.DATE}"),
    ("event_recovery_time", "{EVENT.RECOVERY.TIME}"),
    ("event_severity", "{EVENT.SEVERITY}"),
    ("event_tags", "{EVENT.TAGSJSON}"),
    ("event_time", "{EVENT.TIME}"),
    ("event_update_status", "{EVENT.UPDATE.STATUS}"),
    ("event_value", "{EVENT.VALUE}"),
    ("host_ip", "{HOST.IP}"),
    ("host_name", "{HOST.NAME}"),
    ("item_value", "{ITEM.LASTVALUE}"),
    ("trigger_id", "{TRIGGER.ID}"),
    ("zabbix_url", "{$ZABBIX.URL}"),
]
TEMPLATES = [
    ("PROBLEM", "Problem: {EVENT.NAME}",
     "Problem started at {EVENT.TIME} on {EVENT.DATE}\nProblem name: {EVENT.NAME}\nHost: {HOST.NAME}\nSeverity: {EVENT.SEVERITY}\nOperational data: {EVENT.OPDATA}\nOriginal problem ID: {EVENT.ID}\n{TRIGGER.URL}"),
    ("RECOVERY", "Resolved in {EVENT.DURATION}: {EVENT.NAME}",
     "Problem has been resolved at {EVENT.RECOVERY.TIME} on {EVENT.RECOVERY.DATE}\nProblem name: {EVENT.NAME}\nProblem duration: {EVENT.DURATION}\nHost: {HOST.NAME}\nSeverity: {EVENT.SEVERITY}\nOriginal problem ID: {EVENT.ID}\n{TRIGGER.URL}"),
    ("UPDATE", "Updated problem in {EVENT.AGE}: {EVENT.NAME}",
     "{USER.FULLNAME} {EVENT.UPDATE.ACTION} problem at {EVENT.UPDATE.DATE} {EVENT.UPDATE.TIME}.\n{EVENT.UPDATE.MESSAGE}\n\nCurrent problem status is {EVENT.STATUS}, age is {EVENT.AGE}, acknowledged: {EVENT.ACK.STATUS}."),
]

def block(text, indent):
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.splitlines()) + "\n"

def main():
    script = open(os.path.join(HERE, "alert-intake.js")).read()
    out = ["zabbix_export:", "  version: '5.0'", "  date: '2026-11-20T00:00:00Z'", "  media_types:", "    -",
           "      name: 'Alert intake'", "      type: WEBHOOK", "      parameters:"]
    for name, value in PARAMS:
        out += ["        -", f"          name: {name}", f"          value: '{value}'"]
    out.append("      script: |")
    text = "\n".join(out) + "\n" + block(script, 8)
    tail = ["      timeout: 10s",
            "      description: |",
            "        Posts each problem, recovery and update to the alert intake's Zabbix endpoint.",
            "        Send to: the push URL, /event/push/alert/zabbix?integration_key=KEY.",
            "      message_templates:"]
    for mode, subject, message in TEMPLATES:
        tail += ["        -", "          event_source: TRIGGERS", f"          operation_mode: {mode}",
                 f"          subject: '{subject}'", "          message: |"]
        tail.append(block(message, 12).rstrip("\n"))
    text += "\n".join(tail) + "\n"
    open(os.path.join(HERE, "alert_intake_media_type.yaml"), "w").write(text)

main()
