#!/usr/bin/env python3
"""A local SMTP server for `make run` and the email tests (aiosmtpd, from the
tools venv .cache/venv that scripts/setup.sh fills). It prints every message
it receives (headers and the plain-text part, decoded) and, with --out FILE, also appends each as one JSON line:
{"mail_from", "rcpt_tos", "data", "tls", "login"}.

  scripts/smtp_sink.py [--port 2525] [--out FILE] [--starttls CERT KEY | --tls CERT KEY]
                       [--auth USER:PASSWORD]

--starttls requires STARTTLS before MAIL; --tls wraps the connection in TLS
from the first byte (as port 465 does); --auth requires AUTH PLAIN/LOGIN
with that user and password (over TLS only). Recipients whose local part
starts with "reject" are refused with 550 and those starting with "defer"
with 451, so a sender's handling of permanent and transient failures can be
seen. Runs until stopped (Ctrl-C or SIGTERM)."""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def readable(raw):
    """The headers a person reads and the plain-text part, decoded (links
    whole, not cut by quoted-printable soft breaks); the raw message if it
    does not parse."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        head = "\n".join("%s: %s" % (h, msg[h]) for h in ("From", "To", "Subject", "Date") if msg[h])
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
        return "%s\n\n%s" % (head, body.rstrip())
    except Exception:  # noqa: BLE001 - a sink shows whatever it got
        return raw.decode("utf-8", "replace").replace("\r\n", "\n")


class Sink:
    def __init__(self, out, implicit_tls):
        self.out = out
        self.implicit_tls = implicit_tls

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("defer"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content.decode("utf-8", "replace")
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        print("---- mail from %s to %s ----" % (envelope.mail_from, ", ".join(envelope.rcpt_tos)))
        print(readable(envelope.content), flush=True)
        if self.out:
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": data,
                "tls": self.implicit_tls or session.ssl is not None,
                "login": login,
            }
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        return "250 Message accepted"


def main():
    p = argparse.ArgumentParser(description="A local SMTP server that prints every message.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--out", help="append each message as a JSON line to this file")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", metavar="USER:PASSWORD")
    args = p.parse_args()

    context = None
    pair = args.starttls or args.tls
    if pair:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair[0], pair[1])

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and args.auth is not None
            and "%s:%s" % (auth_data.login.decode(), auth_data.password.decode()) == args.auth
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    options = {"hostname": "localhost"}
    if args.starttls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        options.update(authenticator=authenticate, auth_required=True)
    if args.tls:
        # aiosmtpd only sees its own STARTTLS; this connection is TLS from the start.
        options.update(auth_require_tls=False)
    sink = Sink(args.out, bool(args.tls))
    # aiosmtpd warns about its own deprecated login_data on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(sink, loop=loop, **options),
            args.host,
            args.port,
            ssl=context if args.tls else None,
        )
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop.stop)
    mode = "implicit TLS" if args.tls else "STARTTLS" if args.starttls else "no TLS"
    print("smtp sink listening on %s:%d (%s); every message is printed here" % (args.host, args.port, mode), flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
