#!/usr/bin/env python3
"""A script as an operator writes it for containerlab, run by the end-to-end tests
against `lab` unchanged but for the command's name.

Usage: clab_script.py CLI TOPOLOGY LABEL=VALUE

It reads `CLI inspect -t TOPOLOGY -f json` (containerlab's document: an object keyed
by lab name, each node with `name`, `container_id`, `state`, `ipv4_address`, ...),
then runs `ip -j route` on the nodes selected by `CLI exec -t TOPOLOGY --label
LABEL=VALUE --cmd ... -f json` (containerlab's: an object keyed by container name,
each a list of `{cmd, return-code, stdout, stderr}`), and prints one line per node:
container, management IPv4 address, number of routes. It uses only fields that
containerlab documents, and fails on anything it does not find.
"""
import json
import subprocess
import sys


def run(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    cli, topo, label = sys.argv[1], sys.argv[2], sys.argv[3]
    labs = run(*cli.split(), "inspect", "-t", topo, "-f", "json")
    if len(labs) != 1:
        sys.exit(f"expected one lab, got {list(labs)}")
    (lab, nodes), = labs.items()
    mgmt = {}
    for n in nodes:
        if n["lab_name"] != lab or n["state"] != "running" or len(n["container_id"]) != 12:
            sys.exit(f"unexpected node entry: {n}")
        mgmt[n["name"]] = n["ipv4_address"].split("/")[0]
    results = run(*cli.split(), "exec", "-t", topo, "--label", label, "--cmd", "ip -j route", "-f", "json")
    if not results:
        sys.exit("no node selected")
    for container, runs in sorted(results.items()):
        r = runs[0]
        if r["return-code"] != 0 or r["cmd"] != ["ip", "-j", "route"]:
            sys.exit(f"{container}: {r}")
        routes = json.loads(r["stdout"])
        print(f"{container} {mgmt[container]} {len(routes)}")


if __name__ == "__main__":
    main()
