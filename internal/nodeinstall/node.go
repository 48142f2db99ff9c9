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

// LabelNode sets ReadyLabel=ready on node through the Kubernetes API, with
// the pod's service account (in-cluster: its token and CA, the API's
// address from KUBERNETES_SERVICE_HOST and _PORT).
func LabelNode(ctx context.Context, node string) error {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	token, err := os.ReadFile(filepath.Join(sa, "token"))
	if err != nil {
		return fmt.Errorf("label the node: no service account token: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(sa, "ca.crt"))
	if err != nil {
		return fmt.Errorf("label the node: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("label the node: no certificate in %s/ca.crt", sa)
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" || node == "" {
		return fmt.Errorf("label the node: not in a cluster (KUBERNETES_SERVICE_HOST, _PORT) or no node name")
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{ReadyLabel: "ready"}}})
	url := "https://" + net.JoinHostPort(host, port) + "/api/v1/nodes/" + node
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	req.Header.Set("Content-Type", "application/strategic-merge-patch+json")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("label the node: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("label the node: the API answered %s", resp.Status)
	}
	return nil
}
