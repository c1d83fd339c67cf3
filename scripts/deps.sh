#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building and testing.
# Quiet and fast when everything is already there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have clang-19 || need+=(clang-19)
have llvm-strip-19 || need+=(llvm-19)
pkg libclang-19-dev || need+=(libclang-19-dev)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
have bpftool || need+=(bpftool)
have nginx || need+=(nginx)
have curl || need+=(curl)
have wrk || need+=(wrk)
have strace || need+=(strace)
have ip || need+=(iproute2)
# TLS tests: a self-signed certificate, and a client with OpenSSL linked statically.
have openssl || need+=(openssl)
pkg libssl-dev || need+=(libssl-dev)
have capsh || need+=(libcap2-bin)
# tests/tests/ffi_asan.rs runs the C ABI misuse program under valgrind too.
have valgrind || need+=(valgrind)
# tests/tests/clock_steps.rs steps the receiver's wall clock with libfaketime.
pkg libfaketime || need+=(libfaketime)
# Database suites (tests/src/databases.rs): real servers and their clients.
pkg postgresql || need+=(postgresql)
have pgbench || need+=(postgresql-contrib)
have mariadbd || need+=(mariadb-server)
have mysql || need+=(mariadb-client)
# Messaging suites (tests/src/messaging.rs): an MQTT broker and clients, a Kafka client.
have mosquitto || need+=(mosquitto)
have mosquitto_pub || need+=(mosquitto-clients)
have kcat || need+=(kcat)
# Key/value suites (tests/src/kv.rs): redis-server and memcached, redis-cli, nc.
have redis-server || need+=(redis-server)
have redis-cli || need+=(redis-tools)
have memcached || need+=(memcached)
have nc || need+=(netcat-openbsd)
# Flows and DNS tests (tests/src/netlab.rs): a real resolver and its client.
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
have dig || need+=(bind9-dnsutils)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts nginx on install; the tests run their own instances.
  (systemctl disable --now nginx || service nginx stop || nginx -s stop) >/dev/null 2>&1 || true
  # Likewise the database servers: the suites start theirs on free ports.
  for svc in postgresql mariadb mosquitto redis-server memcached; do
    (systemctl disable --now "$svc" || service "$svc" stop) >/dev/null 2>&1 || true
  done
fi

# Python drivers the database, messaging and key/value suites use as clients (PyPI).
py_need=()
python3 -c 'import psycopg' 2>/dev/null || py_need+=(psycopg)
python3 -c 'import pymysql' 2>/dev/null || py_need+=(PyMySQL)
python3 -c 'import mysql.connector' 2>/dev/null || py_need+=(mysql-connector-python)
# Messaging clients.
python3 -c 'import paho.mqtt' 2>/dev/null || py_need+=(paho-mqtt)
python3 -c 'import pymongo' 2>/dev/null || py_need+=(pymongo)
python3 -c 'import kafka' 2>/dev/null || py_need+=(kafka-python)
# The gRPC suite's Python server and client (tests/grpc/greeter.py).
python3 -c 'import grpc' 2>/dev/null || py_need+=(grpcio)
# The kv suite asserts each client's exact commands (redis-py 8.2 opens a
# connection with CLIENT SETINFO; pymemcache 4 stores with noreply): pinned.
python3 -c 'import redis, sys; sys.exit(redis.__version__ != "8.2.0")' 2>/dev/null || py_need+=(redis==8.2.0)
python3 -c 'import pymemcache, sys; sys.exit(pymemcache.__version__ != "4.0.0")' 2>/dev/null || py_need+=(pymemcache==4.0.0)
if [ ${#py_need[@]} -gt 0 ]; then
  echo "deps: pip installing ${py_need[*]}"
  python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  # Debian's own python3 is "externally managed" (PEP 668).
  python3 -m pip install -q "${py_need[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${py_need[@]}"
fi

# tracefs is where tracepoints are attached; mount it when the host has not.
if [ ! -d /sys/kernel/tracing/events ] && [ "$(id -u)" -eq 0 ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
