"""`npc admin make-ca DIR` and `npc admin issue-cert DIR NAME`: PKI for tests and demos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npc.cli.common import Subcommands


def add_actions(actions: Subcommands) -> None:
    """Add `make-ca` and `issue-cert` to the actions of `npc admin`."""
    make_ca_parser = actions.add_parser(
        "make-ca", help="create a certificate authority for operators' certificates (tests, demos)"
    )
    make_ca_parser.add_argument("dir", metavar="DIR")
    make_ca_parser.set_defaults(admin_offline=make_ca)
    issue = actions.add_parser(
        "issue-cert",
        help="issue an operator's client certificate (CN = operator id) or the server's",
    )
    issue.add_argument("dir", metavar="DIR", help="the CA's directory")
    issue.add_argument("name", metavar="NAME", help="operator id, or a name for the server")
    issue.add_argument(
        "--server-host",
        action="append",
        metavar="HOST",
        help="issue a server certificate valid for HOST (DNS name or IP; repeatable)",
    )
    issue.set_defaults(admin_offline=issue_cert)


def make_ca(args: argparse.Namespace) -> int:
    """`npc admin make-ca DIR`: a new CA, never replacing one."""
    from npc.api.tls import CA_KEY
    from npc.api.tls import make_ca as create_ca

    directory = Path(args.dir)
    if (directory / CA_KEY).exists():
        print(f"npc admin: {directory / CA_KEY} exists; not replacing a CA", file=sys.stderr)
        return 1
    print(f"CA certificate: {create_ca(directory)} (give it to the server as NPC_TLS_CLIENT_CA)")
    return 0


def issue_cert(args: argparse.Namespace) -> int:
    """`npc admin issue-cert DIR NAME`: an operator's (or with --server-host the server's)
    certificate signed by the CA in DIR."""
    from npc.api.tls import CA_CERT, CA_KEY, issue_certificate

    directory = Path(args.dir)
    if not (directory / CA_KEY).exists():
        print(
            f"npc admin: no CA in {directory}; run `npc admin make-ca {directory}`", file=sys.stderr
        )
        return 1
    files = issue_certificate(directory, args.name, server_hosts=args.server_host or None)
    kind = "server" if args.server_host else f"operator {args.name!r}"
    print(f"{kind} certificate: {files.cert}, key: {files.key}, CA: {directory / CA_CERT}")
    return 0
