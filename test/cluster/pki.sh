# PKI and kubeconfigs for the local cluster, made with openssl. Sourced by up.sh.
# Idempotent: files that exist are kept, so a restart keeps every credential valid.

pki=$KT_CLUSTER_DIR/pki

_key() { [ -f "$1" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# cert NAME CN O EKU SAN: a leaf certificate signed by the cluster CA.
cert() {
  local name=$1 cn=$2 o=$3 eku=$4 san=${5:-} subj
  [ -f "$pki/$name.crt" ] && return 0
  _key "$pki/$name.key"
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$pki/$name.ext"
  openssl req -new -key "$pki/$name.key" -subj "$subj" 2>/dev/null \
    | openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
        -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.ext"
}

# kubeconfig FILE CERTNAME [SERVER]: a self-contained kubeconfig (data embedded, so it can be copied).
kubeconfig() {
  local file=$1 name=$2 server=${3:-https://$NODE_IP:$API_PORT}
  [ -f "$file" ] && return 0
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kt-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$pki/$name.crt")
    client-key-data: $(base64 -w0 < "$pki/$name.key")
contexts:
- name: kt-local
  context:
    cluster: kt-local
    user: $name
    namespace: default
current-context: kt-local
KC
  chmod 600 "$file"
}

make_pki() {
  mkdir -p "$pki"; chmod 700 "$pki"
  if [ ! -f "$pki/ca.crt" ]; then
    _key "$pki/ca.key"
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=kt-local-cluster-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  local api_san="IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
  cert apiserver kube-apiserver "" serverAuth "$api_san"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client "" clientAuth
  cert kubelet-serving "system:node:$NODE_NAME" system:nodes serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
  cert kubelet-client "system:node:$NODE_NAME" system:nodes clientAuth
  cert admin kubernetes-admin system:masters clientAuth
  cert controller-manager system:kube-controller-manager "" clientAuth
  cert scheduler system:kube-scheduler "" clientAuth
  cert kube-proxy system:kube-proxy "" clientAuth
  cert coredns kt:coredns "" clientAuth
  _key "$pki/service-account.key"
  [ -f "$pki/service-account.pub" ] || openssl ec -in "$pki/service-account.key" -pubout -out "$pki/service-account.pub" 2>/dev/null

  kubeconfig "$KT_CLUSTER_DIR/admin.kubeconfig" admin
  kubeconfig "$KT_CLUSTER_DIR/controller-manager.kubeconfig" controller-manager
  kubeconfig "$KT_CLUSTER_DIR/scheduler.kubeconfig" scheduler
  kubeconfig "$KT_CLUSTER_DIR/kubelet.kubeconfig" kubelet-client
  kubeconfig "$KT_CLUSTER_DIR/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$KT_CLUSTER_DIR/coredns.kubeconfig" coredns
}
