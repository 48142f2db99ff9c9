package hook

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations containerd's CRI plugin sets on every container's config
// (after the pod annotations it passes through, so a pod cannot set them).
const (
	AnnotationCRIContainerType = "io.kubernetes.cri.container-type"
	AnnotationCRIContainerName = "io.kubernetes.cri.container-name"
	// CRISandbox is the container type of a pod's sandbox (pause)
	// container.
	CRISandbox = "sandbox"
)

// Per-container forms of the annotations, for pods of several containers
// (Kubernetes passes annotations per pod, not per container): the pod
// annotation PREFIX+NAME applies to the container named NAME and overrides
// the pod-wide io.clawos.* annotation for it. A prefixed key leaves the
// container name its full 63 characters.
const (
	ContainerWhitelistPrefix = "whitelist.clawos.io/"
	ContainerSlicePrefix     = "slice.clawos.io/"
	ContainerBaselinePrefix  = "baseline.clawos.io/"
)

// request is what a container's annotations ask of ClawOS. Each value
// comes with the annotation key it was read from, for messages.
type request struct {
	whitelist, whitelistKey string
	slice, sliceKey         string
	baseline, baselineKey   string
	// sandbox is a CRI pod's sandbox container: it runs the pause program
	// and gets no agent whitelist, even though the pod's annotations reach
	// its config too.
	sandbox bool
	// named: the whitelist annotation is there, even if empty (refused:
	// an empty name must not mean "unconfined").
	named bool
}

// requested reads spec's annotations: the per-container form for its CRI
// container name first, then the io.clawos.* form.
func requested(spec *specs.Spec) request {
	ann := spec.Annotations
	if ann[AnnotationCRIContainerType] == CRISandbox {
		return request{sandbox: true}
	}
	name := ann[AnnotationCRIContainerName]
	pick := func(key, prefix string) (string, string) {
		if name != "" {
			if v, ok := ann[prefix+name]; ok {
				return v, prefix + name
			}
		}
		return ann[key], key
	}
	var r request
	r.whitelist, r.whitelistKey = pick(AnnotationWhitelist, ContainerWhitelistPrefix)
	_, r.named = ann[r.whitelistKey]
	r.slice, r.sliceKey = pick(AnnotationSlice, ContainerSlicePrefix)
	r.baseline, r.baselineKey = pick(AnnotationBaseline, ContainerBaselinePrefix)
	return r
}
