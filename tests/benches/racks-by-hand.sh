#!/bin/sh
# The racks topology (topologies/racks) deployed by hand with the docker CLI and
# iproute2, as one would without a lab runner: what `lab up` and `lab down` are
# measured against in P4. `up` returns once every node's kernel holds all four pod
# blocks, as `lab up` waits for; `down` removes everything `up` made.
#
#   racks-by-hand.sh up|down
set -eu
cd "$(dirname "$0")/../../topologies/racks"
dir=$(pwd)
p=p4hand

up() {
    docker network create --subnet 172.20.99.0/24 --label lab.bench=$p $p-mgmt >/dev/null
    for n in tor1 tor2 n1 n2 n3 n4; do
        case $n in
            tor*) binds="-v $dir/$n/frr.conf:/etc/frr/frr.conf:ro" ;;
            *) binds="-v $dir/$n/bird.conf:/etc/bird/bird.conf:ro -v $dir/../common/bird-calico.conf:/etc/bird/calico.conf:ro" ;;
        esac
        # shellcheck disable=SC2086 # $binds is two or four words
        docker run -d --name $p-$n --hostname $n --network $p-mgmt \
            --cap-add NET_ADMIN --cap-add NET_RAW --cap-add SYS_ADMIN --security-opt seccomp=unconfined \
            --sysctl net.ipv4.ip_forward=1 --label lab.bench=$p $binds podlab/base:latest >/dev/null
    done
    i=0
    link() { # node iface ip/31 node iface ip/31
        i=$((i + 1))
        pa=$(docker inspect -f '{{.State.Pid}}' $p-$1)
        pb=$(docker inspect -f '{{.State.Pid}}' $p-$4)
        ip link add $p-a$i type veth peer name $p-b$i
        ip link set $p-a$i netns "$pa"
        ip link set $p-b$i netns "$pb"
        nsenter -t "$pa" -n sh -c "ip link set $p-a$i name $2 && ip addr add $3 dev $2 && ip link set $2 up"
        nsenter -t "$pb" -n sh -c "ip link set $p-b$i name $5 && ip addr add $6 dev $5 && ip link set $5 up"
    }
    link tor1 eth1 10.1.1.0/31 n1 eth1 10.1.1.1/31
    link tor1 eth2 10.1.1.2/31 n2 eth1 10.1.1.3/31
    link tor2 eth1 10.1.2.0/31 n3 eth1 10.1.2.1/31
    link tor2 eth2 10.1.2.2/31 n4 eth1 10.1.2.3/31
    link tor1 eth3 10.0.255.0/31 tor2 eth3 10.0.255.1/31
    for n in tor1 tor2; do docker exec $p-$n /usr/lib/frr/frrinit.sh start >/dev/null; done
    k=0
    for n in n1 n2 n3 n4; do
        docker exec $p-$n sh -c "ip route add blackhole 10.244.0.$((k * 64))/26 && mkdir -p /run/bird && bird -c /etc/bird/bird.conf -s /run/bird/bird.ctl -P /run/bird/bird.pid"
        k=$((k + 1))
    done
    # Every block in every node's kernel, polled every 50 ms for at most 60 s.
    tries=0
    while :; do
        ok=1
        for n in n1 n2 n3 n4; do
            have=$(docker exec $p-$n ip route show root 10.244.0.0/24 2>/dev/null | grep -c '/26' || true)
            [ "$have" -ge 4 ] || ok=0
        done
        [ $ok = 1 ] && break
        tries=$((tries + 1))
        [ $tries -lt 1200 ] || { echo "racks-by-hand: blocks not in every FIB after 60 s" >&2; exit 1; }
        sleep 0.05
    done
}

down() {
    for n in tor1 tor2 n1 n2 n3 n4; do docker rm -f $p-$n >/dev/null 2>&1 || true; done
    docker network rm $p-mgmt >/dev/null 2>&1 || true
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
