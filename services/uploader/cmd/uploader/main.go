// Command uploader ships sealed files from DATA_DIR to S3-compatible
// object storage. Configuration is environment variables; see the
// service README.
package main

import (
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/uploader"
)

func main() {
	var cfg uploader.Config
	svc.Main("uploader", "127.0.0.1:9105", &cfg, uploader.Run)
}
