"""``python -m analytics users add|list|set-role|set-projects|remove`` (the shell's way to do
what Settings does; passwords are read without echo, or from stdin with --password-stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys

from analytics.store import get_engine


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("users", parents=[common], help="manage users")
    usub = p.add_subparsers(dest="users_command", required=True)
    a = usub.add_parser("add", parents=[common], help="add a user")
    a.add_argument("username")
    a.add_argument("--name", default="")
    a.add_argument("--email", default="")
    a.add_argument("--role", required=True, choices=("owner", "member", "reader"))
    a.add_argument("--projects", help="comma list of project ids (default: all projects)")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a.set_defaults(handler=_add)
    usub.add_parser("list", parents=[common], help="list users").set_defaults(handler=_list)
    r = usub.add_parser("set-role", parents=[common], help="change a role")
    r.add_argument("username")
    r.add_argument("role", choices=("owner", "member", "reader"))
    r.set_defaults(handler=_set_role)
    s = usub.add_parser("set-projects", parents=[common], help="limit a user to projects")
    s.add_argument("username")
    s.add_argument("projects", help="comma list of project ids, or 'all'")
    s.set_defaults(handler=_set_projects)
    d = usub.add_parser("remove", parents=[common], help="remove a user")
    d.add_argument("username")
    d.set_defaults(handler=_remove)


def _password(args: argparse.Namespace) -> str:
    from analytics import auth

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise auth.UserError("The two passwords differ.")
    return first


def _split(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "all":
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _add(args: argparse.Namespace) -> int:
    from analytics import auth

    user = auth.add_user(get_engine(args.db), args.username, args.name, args.email,
                         _password(args), args.role, _split(args.projects), actor="cli")
    print(f"added {user.username} ({user.role})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from analytics import auth

    for u in auth.list_users(get_engine(args.db)):
        scope = "all projects" if u.projects is None else ",".join(u.projects)
        print(f"{u.username}\t{u.role}\t{u.name}\t{u.email}\t{scope}")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    from analytics import auth

    auth.set_role(get_engine(args.db), args.username, args.role, actor="cli")
    print(f"{args.username} is now {args.role}")
    return 0


def _set_projects(args: argparse.Namespace) -> int:
    from analytics import auth

    auth.set_projects(get_engine(args.db), args.username, _split(args.projects), actor="cli")
    print(f"{args.username} now sees {args.projects}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from analytics import auth

    auth.remove_user(get_engine(args.db), args.username, actor="cli")
    print(f"removed {args.username}")
    return 0
