module github.com/depthcap/depthcap/services/spot-ws

go 1.26.0

require github.com/depthcap/depthcap/pkg v0.0.0

replace github.com/depthcap/depthcap/pkg => ../../pkg
