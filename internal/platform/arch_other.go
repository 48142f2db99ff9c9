//go:build !amd64

package platform

const amd64 = false
