#!/usr/bin/env bash
# End-to-end test on a kind cluster: builds the broker and operator images from docker/, loads
# them into kind, installs the Helm chart, applies examples/ (the broker image set to the one
# just built, resources and volumes shrunk to fit one kind node), waits for the cluster and its
# topics to be Ready, produces and consumes records through the `krait` CLI in a broker pod, scales
# 3 -> 4 -> 3 -> 4 -> 3 (the second fourth broker on the first one's volume), asks for bigger
# volumes (refused with a condition on kind's StorageClass), changes the broker config (which
# restarts every broker, one at a time) and checks `kubectl describe` tells each restart and why,
# and deletes the kind cluster on exit.
#
# Needs kind, kubectl, helm and docker; without one of them it prints SKIP and exits 0.
#
# Environment:
#   KIND_CLUSTER      kind cluster name (default krait-e2e); an existing one is reused (and
#                     deleted at the end like a new one, unless KEEP=1)
#   KIND_NODE_IMAGE   kind node image (default: kind's own)
#   KEEP=1            leave the kind cluster running at the end
#   RECORDS           records to produce and consume (default 1000)
#   BASE_IMAGE        base of both images (the Dockerfiles' default: debian:bookworm-slim); its
#                     glibc must be at least the build host's
#   KRAIT_E2E_SCALE=0 skip the 3 -> 4 -> 3 -> 4 -> 3 scaling step
#   KRAIT_E2E_STORAGE=0 skip the volume growth step
#   KRAIT_E2E_ROLL=0  skip the config change that rolls every broker
#   WAIT_SECONDS      bound of each wait for Ready (default 600)
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
for tool in kind kubectl helm docker; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "SKIP: kind e2e needs kind, kubectl, helm and docker; missing: ${missing[*]}"
  exit 0
fi

CLUSTER="${KIND_CLUSTER:-krait-e2e}"
RECORDS="${RECORDS:-1000}"
WAIT_SECONDS="${WAIT_SECONDS:-600}"
TAG=e2e
BROKER_IMAGE="ghcr.io/krait-dev/krait-broker:$TAG"
OPERATOR_IMAGE="ghcr.io/krait-dev/krait-operator:$TAG"
NS=kafka                  # the namespace of examples/
OPERATOR_NS=krait-system
NAME=main                 # the KafkaCluster of examples/kafkacluster.yaml
TOPIC=orders              # a topic of examples/kafkatopics.yaml (replication factor 3)
APP_USER=orders-app       # a KafkaUser of examples/kafkausers.yaml, allowed to write to orders
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/krait/target}"

# A kubeconfig of our own: the user's current context is never touched.
WORK="$(mktemp -d)"
export KUBECONFIG="$WORK/kubeconfig"

step() { printf '\n==== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
# One request, bounded. Commands that wait (wait, delete) are bounded by their own --timeout
# instead: --request-timeout would cut their watches short.
k() { kubectl --request-timeout=30s "$@"; }
kw() { kubectl "$@"; }
# The records produced: record-1, record-2, ...
records() { seq 1 "$RECORDS" | sed 's/^/record-/'; }

diagnostics() {
  step "diagnostics"
  k get kafkaclusters,kafkatopics,kafkausers,statefulsets,pods,pvc,services -n "$NS" -o wide || true
  k describe kafkacluster "$NAME" -n "$NS" || true
  k logs -n "$OPERATOR_NS" deployment/krait-operator --tail=200 || true
  for pod in $(k get pods -n "$NS" -o name 2>/dev/null); do
    echo "--- $pod"
    k logs -n "$NS" "$pod" --tail=50 || true
  done
}

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then diagnostics; fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "KEEP=1: kind cluster $CLUSTER is still running (kubeconfig: kind get kubeconfig --name $CLUSTER)"
  else
    timeout 300 kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

create_cluster() {
  step "kind cluster $CLUSTER"
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"
  else
    local image=()
    [ -n "${KIND_NODE_IMAGE:-}" ] && image=(--image "$KIND_NODE_IMAGE")
    kind create cluster --name "$CLUSTER" ${image[@]+"${image[@]}"} --wait 180s
  fi
  k get nodes -o wide
}

build_images() {
  step "build binaries and images"
  cargo build --release --locked -p krait-server -p krait-cli -p krait-operator
  local context="$WORK/image"
  mkdir -p "$context/bin"
  cp "$CARGO_TARGET_DIR"/release/{krait-broker,krait,krait-operator} "$context/bin/"
  local base=()
  [ -n "${BASE_IMAGE:-}" ] && base=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  docker build -f docker/broker.Dockerfile --build-arg BIN_DIR=bin ${base[@]+"${base[@]}"} \
    -t "$BROKER_IMAGE" "$context"
  docker build -f docker/operator.Dockerfile --build-arg BIN_DIR=bin ${base[@]+"${base[@]}"} \
    -t "$OPERATOR_IMAGE" "$context"
  timeout 600 kind load docker-image --name "$CLUSTER" "$BROKER_IMAGE" "$OPERATOR_IMAGE"
}

install_operator() {
  step "helm install the operator"
  # The chart makes a Role in each watched namespace, so the namespace comes first.
  k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
  helm upgrade --install krait-operator charts/krait-operator \
    --namespace "$OPERATOR_NS" --create-namespace \
    --set image.tag="$TAG" --set image.pullPolicy=IfNotPresent \
    --set "watchNamespaces={$NS}" \
    --wait --timeout 5m
  kw wait --for=condition=Established crd/kafkaclusters.krait.dev crd/kafkatopics.krait.dev \
    crd/kafkausers.krait.dev --timeout=60s
}

apply_examples() {
  step "apply examples/"
  # The example asks for 50Gi volumes and 1 CPU per broker, which one kind node cannot give,
  # and spreads brokers over zones: the node gets one, which each broker's rack init container
  # reads from the Node (docs/kubernetes.md#rack-awareness).
  k label node --all topology.kubernetes.io/zone=kind-a --overwrite
  local patch
  patch="{\"spec\":{\"image\":\"$BROKER_IMAGE\",\"resources\":null,\"storage\":{\"size\":\"1Gi\"}}}"
  k patch --local -f examples/kafkacluster.yaml --type=merge -p "$patch" -o yaml | k apply -f -
  k apply -f examples/kafkatopics.yaml
  k apply -f examples/kafkausers.yaml
}

# Waits until the operator has seen the cluster's current generation and says Ready with
# `replicas` brokers ready.
wait_cluster_ready() {
  local replicas=$1 generation
  generation="$(k get kafkacluster "$NAME" -n "$NS" -o jsonpath='{.metadata.generation}')"
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" \
    --for=jsonpath='{.status.observedGeneration}'="$generation"
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" --for=condition=Ready
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout=60s \
    --for=jsonpath='{.status.readyBrokers}'="$replicas"
  k get kafkacluster "$NAME" -n "$NS" -o wide
}

# Runs the krait CLI in a broker pod as a SCRAM user, bounded: a hung exec must not hang the
# job. The example cluster's listener is TLS with SCRAM-SHA-512 on 9094: the CLI logs in with
# the password from the user's Secret (the operator's own, or a KafkaUser's), trusting the
# cluster CA the pod mounts; `localhost` is not a name the brokers' certificates carry, so the
# host name is not checked.
krait_as() {
  local user=$1 secret=$2 pod=$3
  shift 3
  local password
  password="$(k get secret "$secret" -n "$NS" -o jsonpath='{.data.password}' | base64 -d)"
  printf '%s\n' "security.protocol=SASL_SSL" "sasl.mechanism=SCRAM-SHA-512" \
    "sasl.username=$user" "sasl.password=$password" \
    "ssl.truststore.location=/etc/krait/cluster-tls/ca.crt" \
    "ssl.endpoint.identification.algorithm=" |
    timeout 60 kubectl exec -i -n "$NS" "$pod" -- sh -c "cat > /var/lib/krait/e2e-$user.properties"
  timeout 300 kubectl exec -i -n "$NS" "$pod" -- \
    krait --bootstrap-server localhost:9094 --command-config "/var/lib/krait/e2e-$user.properties" \
    --timeout-ms 60000 "$@"
}

# The CLI as the operator's user, a super user.
krait_in() {
  local pod=$1
  shift
  krait_as krait-operator "$NAME-operator-credentials" "$pod" "$@"
}

# Produces as the example KafkaUser orders-app, whose ACLs allow writing to orders.
produce() {
  step "produce $RECORDS records to $TOPIC through $NAME-0 as KafkaUser $APP_USER"
  local report
  if ! report="$(records | krait_as "$APP_USER" "$APP_USER" "$NAME-0" produce "$TOPIC" --acks all 2>&1)"; then
    echo "$report"
    echo "FAIL: krait produce failed"
    return 1
  fi
  echo "$report"
  grep -qx "Produced $RECORDS records." <<<"$report" || {
    echo "FAIL: expected 'Produced $RECORDS records.'"
    return 1
  }
}

# Consumes the whole topic through `pod` and checks every produced record is there, once.
consume_and_check() {
  local pod=$1 out="$WORK/consumed"
  step "consume $TOPIC from the beginning through $pod"
  krait_in "$pod" consume "$TOPIC" --from-beginning --max-messages "$RECORDS" </dev/null >"$out"
  local got distinct
  got="$(wc -l <"$out")"
  distinct="$(sort -u "$out" | wc -l)"
  echo "produced $RECORDS, consumed $got, distinct $distinct"
  if ! diff -q <(records | sort) <(sort -u "$out") >/dev/null; then
    echo "FAIL: the consumed records are not the produced ones"
    return 1
  fi
  [ "$got" -eq "$RECORDS" ] || { echo "FAIL: $got records consumed, want $RECORDS"; return 1; }
}

# The KafkaUser's ACLs allow orders and nothing else: a write to another topic is refused.
user_is_limited_to_its_acls() {
  step "KafkaUser $APP_USER is refused on a topic its ACLs do not name"
  if echo refused | krait_as "$APP_USER" "$APP_USER" "$NAME-0" produce payments.events_v1 \
    --acks all >"$WORK/refused" 2>&1; then
    cat "$WORK/refused"
    echo "FAIL: $APP_USER produced to payments.events_v1 without an ACL"
    return 1
  fi
  grep -i "authoriz" "$WORK/refused" || { cat "$WORK/refused"; echo "FAIL: not an authorization error"; return 1; }
}

scale_to() {
  step "scale $NAME to $1 brokers"
  k patch kafkacluster "$NAME" -n "$NS" --type=merge -p "{\"spec\":{\"replicas\":$1}}"
  wait_cluster_ready "$1"
  # Ready comes before the partitions have moved: wait for the operator to settle.
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" \
    --for=condition=Progressing=false
  k get kafkacluster "$NAME" -n "$NS" -o jsonpath='{.status.rebalance}{"\n"}'
}

# The uid of broker 3's volume claim (data-main-3), empty while there is none.
claim_uid() {
  k get pvc "data-$NAME-3" -n "$NS" -o jsonpath='{.metadata.uid}' 2>/dev/null || true
}

# 3 -> 4 -> 3 -> 4 -> 3: the StatefulSet keeps broker 3's claim when it scales down, so the
# second time broker 3 starts on the volume of the first, which remembers partitions, topics
# and a registration that are long gone. It must catch up before it serves (its /readyz says
# so) and then hold what the leaders hold: records are read back through it.
scale_back_onto_an_old_volume() {
  scale_to 4
  local first
  first="$(claim_uid)"
  [ -n "$first" ] || { echo "FAIL: no claim data-$NAME-3 after scaling to 4"; return 1; }
  scale_to 3
  consume_and_check "$NAME-2"
  scale_to 4
  [ "$(claim_uid)" = "$first" ] || { echo "FAIL: broker 3 did not get its old claim back"; return 1; }
  consume_and_check "$NAME-3"
  scale_to 3
}

# kind's StorageClass (local-path) cannot expand volumes: a bigger storage.size is refused with
# a condition that says why, the claims keep their size, and going back clears the condition.
# (On a class with allowVolumeExpansion the operator patches the claims and re-creates the
# StatefulSet; operator/reconciler/tests/cluster_storage.rs runs both paths against the fake
# API server.)
grow_volumes() {
  step "grow storage.size 1Gi -> 2Gi on a StorageClass without volume expansion"
  local expandable
  expandable="$(k get storageclass "$(k get pvc "data-$NAME-0" -n "$NS" -o jsonpath='{.spec.storageClassName}')" \
    -o jsonpath='{.allowVolumeExpansion}')"
  k patch kafkacluster "$NAME" -n "$NS" --type=merge -p '{"spec":{"storage":{"size":"2Gi"}}}'
  if [ "$expandable" = true ]; then
    kw wait pvc -l "app.kubernetes.io/instance=$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" \
      --for=jsonpath='{.spec.resources.requests.storage}'=2Gi
    wait_cluster_ready 3
    return
  fi
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" \
    --for=jsonpath='{.status.conditions[?(@.type=="Degraded")].reason}'=VolumeExpansionNotSupported
  k describe kafkacluster "$NAME" -n "$NS" | grep -F "allowVolumeExpansion" ||
    { echo "FAIL: kubectl describe does not say why the volumes cannot grow"; return 1; }
  local size
  size="$(k get pvc "data-$NAME-0" -n "$NS" -o jsonpath='{.spec.resources.requests.storage}')"
  [ "$size" = 1Gi ] || { echo "FAIL: claim data-$NAME-0 asks for $size after a refused growth"; return 1; }
  k patch kafkacluster "$NAME" -n "$NS" --type=merge -p '{"spec":{"storage":{"size":"1Gi"}}}'
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" --for=condition=Degraded=false
  wait_cluster_ready 3
}

# The uids of the cluster's broker pods, one a line, sorted.
pod_uids() {
  k get pods -n "$NS" -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}' \
    -l "app.kubernetes.io/instance=$NAME,app.kubernetes.io/component=broker" | sort
}

# A config change gives the pod template a new config hash: the operator restarts every broker,
# one at a time (evicting its pod), and tells each restart and why in an event on the cluster.
roll_on_config_change() {
  step "change the broker config: every broker restarts, one at a time"
  local before deadline restarted
  before="$(pod_uids)"
  k patch kafkacluster "$NAME" -n "$NS" --type=merge \
    -p '{"spec":{"config":{"log.retention.ms":"86400000"}}}'
  deadline=$((SECONDS + WAIT_SECONDS))
  while restarted="$(comm -13 <(echo "$before") <(pod_uids) | wc -l)" && [ "$restarted" -lt 3 ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "FAIL: $restarted of 3 brokers restarted within ${WAIT_SECONDS}s"
      return 1
    fi
    sleep 5
  done
  wait_cluster_ready 3
  kw wait kafkacluster/"$NAME" -n "$NS" --timeout="${WAIT_SECONDS}s" \
    --for=condition=Progressing=false
  step "kubectl describe tells the roll"
  k describe kafkacluster "$NAME" -n "$NS" | tee "$WORK/describe"
  local id
  for id in 0 1 2; do
    grep -q "restarting broker $id (pod $NAME-$id): the broker configuration changed" \
      "$WORK/describe" || { echo "FAIL: no event tells broker $id's restart"; return 1; }
  done
  k get events -n "$NS" --field-selector "involvedObject.name=$NAME,reason=RestartingBroker"
}

main() {
  create_cluster
  build_images
  install_operator
  apply_examples
  step "wait for the cluster and its topics"
  wait_cluster_ready 3
  k logs -n "$NS" "$NAME-0" -c rack | grep -F 'kind-a' >/dev/null ||
    { echo "FAIL: broker 0's rack init container did not write the node's zone"; return 1; }
  kw wait kafkatopic --all -n "$NS" --timeout="${WAIT_SECONDS}s" --for=condition=Ready
  k get kafkatopics -n "$NS"
  kw wait kafkauser --all -n "$NS" --timeout="${WAIT_SECONDS}s" --for=condition=Ready
  k get kafkausers -n "$NS"
  krait_in "$NAME-0" topic list </dev/null
  produce
  user_is_limited_to_its_acls
  consume_and_check "$NAME-1"
  if [ "${KRAIT_E2E_SCALE:-1}" != 0 ]; then
    # Broker 3 joins as an observer and receives partitions; scaling back drains it first.
    # The second time it comes back on its old volume.
    scale_back_onto_an_old_volume
    consume_and_check "$NAME-2"
  fi
  if [ "${KRAIT_E2E_STORAGE:-1}" != 0 ]; then
    grow_volumes
  fi
  if [ "${KRAIT_E2E_ROLL:-1}" != 0 ]; then
    roll_on_config_change
    consume_and_check "$NAME-0"
  fi
  step "delete the examples"
  # orders has deletionPolicy: Delete, so its finalizer deletes the Kafka topic first.
  kw delete -f examples/kafkatopics.yaml --timeout=120s
  # The users' finalizers remove their credentials and ACLs from the cluster.
  kw delete -f examples/kafkausers.yaml --timeout=120s
  kw delete kafkacluster "$NAME" -n "$NS" --timeout=120s
  # Its finalizer holds the cluster until its rack ClusterRoleBinding is gone.
  if k get clusterrolebinding "krait-$NS-$NAME-rack" >/dev/null 2>&1; then
    echo "FAIL: the cluster's rack ClusterRoleBinding outlived it"; return 1
  fi
  step "PASS: kind e2e ($RECORDS records produced and consumed)"
}

main "$@"
