#!/bin/sh
# mmdebstrap customize hook: runs on the host with the new root file system in $1.
# Enables FRR's bgpd (zebra is always on) and trims what a container never uses.
set -eu
root="$1"
sed -i 's/^bgpd=no/bgpd=yes/' "$root/etc/frr/daemons"
mkdir -p "$root/run/bird" "$root/etc/gobgp"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
