// Package namespaces owns everything about a sandbox's isolation that is not
// seccomp, as OCI runtime-spec structures shared by clawos-run, the hook and
// the policy tool: the namespaces (user, pid, mount, net, uts, ipc, cgroup),
// uid/gid maps, capabilities (none by default), no_new_privs, the read-only
// root and the default view of the host's filesystem, masked and read-only
// paths, rlimits capped at the caller's own hard limits, P1.5 slices mapped
// to linux.resources, and the defaults of each P1.2 security_level.
//
// It builds configuration, and installs one thing in the kernel: a
// sandbox's port policy, as an nftables table in its network namespace
// (PortPolicy.Install, over netlink); it starts no process.
package namespaces
