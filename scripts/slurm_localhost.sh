#!/usr/bin/env bash
# A single-node SLURM cluster (with accounting) on this machine, for tests and for trying launcher=slurm.
#
#   scripts/slurm_localhost.sh up       install missing Debian packages, start munged, mariadb, slurmdbd,
#                                       slurmctld and slurmd; idempotent (running daemons are left alone)
#   scripts/slurm_localhost.sh down     stop exactly the daemons `up` started (by their pid files)
#   scripts/slurm_localhost.sh status   which daemons run, and the SLURM_CONF line to export
#   scripts/slurm_localhost.sh env      print `export SLURM_CONF=...` (eval "$(scripts/slurm_localhost.sh env)")
#
# Everything lives under $TIMETRIAL_SLURM_DIR (default /tmp/timetrial-slurm): configs, state, logs,
# pid files, the database. No systemd: the daemons are started by hand. munged serves the default
# socket (SLURM's clients do not all honour AuthInfo=socket=); a munged that already serves it is
# used as it is and left running by `down`.
set -euo pipefail

DIR=${TIMETRIAL_SLURM_DIR:-/tmp/timetrial-slurm}
CLUSTER=timetrial
DB_PORT=${TIMETRIAL_SLURM_DB_PORT:-3307}
SLURMCTLD_PORT=${TIMETRIAL_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${TIMETRIAL_SLURMD_PORT:-6818}
SLURMDBD_PORT=${TIMETRIAL_SLURMDBD_PORT:-6819}
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
DAEMONS=(munged mariadb slurmdbd slurmctld slurmd)
export SLURM_CONF=$DIR/etc/slurm.conf

log() { echo "slurm_localhost: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

running() {  # running NAME: the daemon's pid file names a live process
    local pidfile=$DIR/run/$1.pid
    [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
    local limit=$1 deadline=$((SECONDS + $1)) what=$2; shift 2
    while ((SECONDS < deadline)); do
        timeout 5 "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "$what did not come up within ${limit}s; logs in $DIR/log"
}

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "packages missing (${missing[*]}); run as root or: sudo apt-get install -y ${PACKAGES[*]}"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >"$DIR/log/apt.log" 2>&1 \
        || { apt-get update -q >>"$DIR/log/apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >>"$DIR/log/apt.log" 2>&1; } \
        || die "apt-get install failed; see $DIR/log/apt.log"
}

write_configs() {
    local node cpus memory_mb
    node=$(hostname -s)
    cpus=$(nproc)
    memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd.%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=300
KillWait=5
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$SLURMDBD_PORT
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/etc/slurmdbd.conf"
}

start_munged() {
    running munged && return 0
    munge -n </dev/null >/dev/null 2>&1 && return 0  # someone else's munged serves the socket
    mkdir -p /run/munge
    install -m 600 /etc/munge/munge.key "$DIR/etc/munge.key"
    munged --force --key-file="$DIR/etc/munge.key" --pid-file="$DIR/run/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/state/munged.seed"
    wait_for 10 munged bash -c "munge -n </dev/null"
}

start_mariadb() {
    running mariadb && return 0
    local socket=$DIR/run/mysqld.sock
    if [[ ! -d $DIR/mysql/mysql ]]; then
        mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
            >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $DIR/log/mariadb-install.log"
    fi
    mariadbd --user=root --datadir="$DIR/mysql" --socket="$socket" --pid-file="$DIR/run/mariadb.pid" \
        --bind-address=127.0.0.1 --port="$DB_PORT" --log-error="$DIR/log/mariadb.log" \
        --innodb-buffer-pool-size=64M --skip-log-bin >/dev/null 2>&1 &
    wait_for 60 mariadb mariadb --socket="$socket" -u root -e "SELECT 1"
    mariadb --socket="$socket" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        FLUSH PRIVILEGES;"
}

start_slurmdbd() {
    running slurmdbd && return 0
    slurmdbd  # reads slurmdbd.conf beside $SLURM_CONF
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

start_slurmctld() {
    running slurmctld && return 0
    slurmctld -f "$SLURM_CONF"
    wait_for 30 slurmctld scontrol ping
}

start_slurmd() {
    running slurmd && return 0
    slurmd -f "$SLURM_CONF"
    wait_for 30 "slurmd (node idle)" bash -c "sinfo -h -o %t | grep -qE '^(idle|mix|alloc)'"
}

up() {
    mkdir -p "$DIR"/{etc,run,log,state,spool,mysql}
    install_packages
    write_configs
    start_munged
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    log "up: $(sinfo -h -o '%P %D nodes %c cpus %t' | head -1); export SLURM_CONF=$SLURM_CONF"
}

down() {
    local daemon pid
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        daemon=${DAEMONS[i]}
        running "$daemon" || { rm -f "$DIR/run/$daemon.pid"; continue; }
        pid=$(cat "$DIR/run/$daemon.pid")
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$DIR/run/$daemon.pid"
        log "stopped $daemon ($pid)"
    done
}

status() {
    local daemon all=0
    for daemon in "${DAEMONS[@]}"; do
        if running "$daemon"; then echo "$daemon running (pid $(cat "$DIR/run/$daemon.pid"))"; else echo "$daemon stopped"; all=1; fi
    done
    echo "export SLURM_CONF=$SLURM_CONF"
    return $all
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
