module github.com/clawos/clawos-security

go 1.26.0

require (
	github.com/gowebpki/jcs v1.0.2
	github.com/opencontainers/runtime-spec v1.3.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	github.com/seccomp/libseccomp-golang v0.11.1
	golang.org/x/text v0.44.0
)
