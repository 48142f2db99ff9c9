package nodeinstall

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ContainerdSocket is containerd's API socket on the node.
const ContainerdSocket = "/run/containerd/containerd.sock"

// RestartContainerd restarts the node's containerd through its systemd
// (systemctl in a chroot of host, which reaches systemd over host's /run).
func RestartContainerd(ctx context.Context, host string) error {
	cmd := exec.CommandContext(ctx, "/usr/bin/systemctl", "restart", "containerd")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: host}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("restart containerd: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// HealthCheck waits (until ctx ends) for containerd to answer on its
// socket, then runs the wrapper on the node (chroot host) as containerd's
// shim will: `clawos-runc --version` reads its configuration and execs
// the real runc, so a missing runc, an unreadable runtime.json or a
// wrapper that does not run fails it.
func HealthCheck(ctx context.Context, host, prefix string) error {
	sock := filepath.Join(host, ContainerdSocket)
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd does not answer on %s: %w", ContainerdSocket, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(prefix, "bin", "clawos-runc"), "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: host}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("runc version")) {
		return fmt.Errorf("the wrapper does not run runc on the node: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// ReadyLabel is the node label that the clawos RuntimeClass's scheduling
// selects: set once the handler is installed and healthy.
const ReadyLabel = "clawos.io/runtime"

// API is the Kubernetes API as a pod reaches it (in-cluster): its service
// account's token and CA, the address from KUBERNETES_SERVICE_HOST and
// _PORT. Only what the installer needs: a node label, an event.
type API struct {
	base   string
	token  string
	client *http.Client
}

// InCluster returns the API of the pod this process runs in.
func InCluster() (*API, error) {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	token, err := os.ReadFile(filepath.Join(sa, "token"))
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API: no service account token: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(sa, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("the Kubernetes API: no certificate in %s/ca.crt", sa)
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, fmt.Errorf("the Kubernetes API: not in a cluster (KUBERNETES_SERVICE_HOST, _PORT unset)")
	}
	return NewAPI("https://"+net.JoinHostPort(host, port), string(bytes.TrimSpace(token)), pool), nil
}

// NewAPI is the API at base (https://HOST:PORT), authenticated by token,
// its certificate checked against pool.
func NewAPI(base, token string, pool *x509.CertPool) *API {
	return &API{base: base, token: token,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

func (a *API) do(ctx context.Context, method, path, contentType string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: the API answered %s", method, path, resp.Status)
	}
	return nil
}

// LabelNode sets ReadyLabel=ready on node.
func (a *API) LabelNode(ctx context.Context, node string) error {
	if node == "" {
		return fmt.Errorf("label the node: no node name")
	}
	return a.do(ctx, http.MethodPatch, "/api/v1/nodes/"+node, "application/strategic-merge-patch+json",
		map[string]any{"metadata": map[string]any{"labels": map[string]string{ReadyLabel: "ready"}}})
}

// Event records an event of type ("Normal", "Warning") about pod in
// namespace, as kubectl describe pod shows it.
func (a *API) Event(ctx context.Context, namespace, pod, typ, reason, message string) error {
	now := time.Now().UTC().Format(time.RFC3339)
	return a.do(ctx, http.MethodPost, "/api/v1/namespaces/"+namespace+"/events", "application/json", map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"generateName": pod + ".", "namespace": namespace},
		"involvedObject": map[string]any{"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace},
		"type":           typ, "reason": reason, "message": message,
		"source":         map[string]any{"component": "clawos-installer"},
		"firstTimestamp": now, "lastTimestamp": now, "count": 1,
	})
}
