#!/usr/bin/python3
"""gst-rtsp-server serving one MPEG-TS file (H.264 + AAC) as a shared live stream, paced by its
timestamps: the anchor for bench/rtsp_hub.sh. Prints "listening rtsp://127.0.0.1:PORT/live/cam".

Usage: gst_rtsp_file.py FILE.ts
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
f = GstRtspServer.RTSPMediaFactory()
f.set_launch(
    f"( filesrc location={sys.argv[1]} ! tsdemux name=d "
    "d. ! queue ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 "
    "d. ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
)
f.set_shared(True)
f.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
server.get_mount_points().add_factory("/live/cam", f)
server.attach(None)
print(f"listening rtsp://127.0.0.1:{server.get_bound_port()}/live/cam", file=sys.stderr, flush=True)
GLib.MainLoop().run()
