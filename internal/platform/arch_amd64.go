package platform

const amd64 = true
