// Package annotations is the one table of the OCI and Kubernetes
// annotation keys ClawOS reads and writes. Other packages name these
// constants (translate.AnnotationProfileDigest is ProfileDigest, ...); a
// key is defined here only. It has no dependencies: the runtime wrapper,
// which runs for every runc call, links it.
package annotations

// What a container's creator sets to ask for confinement (an engine's
// --annotation, a pod's annotations).
const (
	// Whitelist names a whitelist in the operator's trusted directory:
	// NAME reads WhitelistDir/NAME.json.
	Whitelist = "io.clawos.whitelist"
	// Slice names a P1.5 slice (memory, cpu, pids quotas).
	Slice = "io.clawos.slice"
	// Baseline lists the baselines to add (start, tokio, none; comma
	// separated); "start" when absent, as in clawos-run.
	Baseline = "io.clawos.baseline"
)

// Per-container forms, for pods of several containers (Kubernetes passes
// annotations per pod): PREFIX+NAME applies to the container NAME and
// overrides the pod-wide key for it.
const (
	ContainerWhitelistPrefix = "whitelist.clawos.io/"
	ContainerSlicePrefix     = "slice.clawos.io/"
	ContainerBaselinePrefix  = "baseline.clawos.io/"
)

// What ClawOS writes on a config it confined; later stages compare them.
const (
	// WhitelistID is the whitelist_id of the applied whitelist.
	WhitelistID = "io.clawos.whitelist-id"
	// ProfileDigest is "sha256:" and the hex SHA-256 of the
	// container-level linux.seccomp section.
	ProfileDigest = "io.clawos.profile-digest"
	// AgentDigest is the digest of the agent's filter, which clawos-init
	// loads: it marks a config ClawOS confined.
	AgentDigest = "io.clawos.agent-profile-digest"
	// NetworkPolicy is the port policy as JSON.
	NetworkPolicy = "io.clawos.network-policy"
	// Runtime is the runtime whose measured calls the container stage
	// holds.
	Runtime = "io.clawos.runtime"
	// Refusal carries a refusal from precreate to prestart (engines that
	// discard a precreate hook's stderr).
	Refusal = "io.clawos.refusal"
)

// PodPatterns are the pod annotations containerd's CRI plugin must pass
// into the OCI config (its pod_annotations); ContainerPatterns its
// container_annotations.
var (
	PodPatterns       = []string{"io.clawos.*", ContainerWhitelistPrefix + "*", ContainerSlicePrefix + "*", ContainerBaselinePrefix + "*"}
	ContainerPatterns = []string{"io.clawos.*"}
)
