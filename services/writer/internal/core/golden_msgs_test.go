package core

import (
	"time"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// v1Msgs is the stream the testdata/checkpoint-v1 file was written from
// by the version 1 writer (before partial gap reports were matched):
// spot partials of ABCUSDT from A and B with B's disconnect report
// (110, 139], USD-M partials of XYZUSDT from A and B with B's disconnect
// report (500, 599].
func v1Msgs() []Msg {
	ms := int64(time.Millisecond)
	at := func(i int) int64 { return t0 + int64(i)*100*ms }
	return []Msg{
		spotPartialMsg(1, "ABCUSDT", "A", 100, at(1)),
		spotPartialMsg(2, "ABCUSDT", "B", 110, at(2)),
		spotPartialMsg(3, "ABCUSDT", "A", 120, at(3)),
		spotPartialMsg(4, "ABCUSDT", "A", 130, at(4)),
		partialGapMsg(5, md.Spot, "ABCUSDT", "B", envelope.ReasonDisconnect, 110, 139, at(5)),
		spotPartialMsg(6, "ABCUSDT", "B", 140, at(5)),
		futuresPartialMsg(7, "XYZUSDT", "A", 450, at(6)),
		futuresPartialMsg(8, "XYZUSDT", "B", 500, at(7)),
		partialGapMsg(9, md.Futures, "XYZUSDT", "B", envelope.ReasonDisconnect, 500, 599, at(8)),
		futuresPartialMsg(10, "XYZUSDT", "B", 600, at(8)),
	}
}
