module github.com/depthcap/depthcap/services/depthcap

go 1.26.0

require github.com/depthcap/depthcap/pkg v0.0.0

replace github.com/depthcap/depthcap/pkg => ../../pkg
