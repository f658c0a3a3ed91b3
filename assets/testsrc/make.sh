#!/bin/sh
# Regenerates clip.flv, the test clip river-testsrc embeds (include_bytes!), from ffmpeg's lavfi.
# Usage: sh assets/testsrc/make.sh   (needs ffmpeg with libx264, libfreetype/fontconfig and a font)
#
# The clip loops seamlessly:
# - video: 4 s at 30 fps = 120 frames, no B-frames, an IDR every 30 frames (4 IDRs, so x264's
#   alternating idr_pic_id differs across the loop seam too);
# - audio: 32 kHz mono AAC, 4 s = 128000 samples = 125 frames of 1024 samples exactly. The signal
#   (a 100 ms beep every second, higher at the start of each loop) is periodic in 4 s. The encoder
#   primes with 1024 samples, so packet j decodes input samples [(j-1)*1024, j*1024). We encode
#   8.2 s and keep packets 126..250: the first one decodes samples 125*1024 = 4.000 s on, i.e.
#   the start of the second period, and each kept packet has a real predecessor, so packet 250
#   would be followed by the same content as packet 126: no priming silence, no click at the seam.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
FF="ffmpeg -nostdin -hide_banner -loglevel error -y"

$FF -f lavfi -i "testsrc2=size=640x360:rate=30:duration=4,drawtext=text='river testsrc  %{eif\:n\:d\:3}/120':fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8:x=(w-tw)/2:y=(h-th)/2" \
  -threads 1 -c:v libx264 -preset medium -profile:v main -bf 0 -g 30 -keyint_min 30 \
  -sc_threshold 0 -crf 35 -pix_fmt yuv420p -bitexact -f h264 "$tmp/video.h264"

$FF -f lavfi -i "aevalsrc=exprs='0.5*sin(2*PI*if(lt(mod(t\,4)\,1)\,1760\,880)*t)*lt(mod(t\,1)\,0.1)*min(1\,min(mod(t\,1)\,0.1-mod(t\,1))*200)':s=32000:d=8.2" \
  -threads 1 -c:a aac -b:a 48k -ac 1 -bitexact -f adts "$tmp/audio-8s.aac"
# ADTS packet j has pts j*32 ms: -ss 4.02 drops packets 0..125, -frames:a keeps 126..250.
# (MP4, not ADTS, in between: from ADTS the FLV muxer would first write an empty AAC sequence header.)
$FF -i "$tmp/audio-8s.aac" -ss 4.02 -frames:a 125 -c copy -f mp4 "$tmp/audio.m4a"

$FF -r 30 -f h264 -i "$tmp/video.h264" -i "$tmp/audio.m4a" -map 0:v -map 1:a -c copy \
  -bitexact -f flv clip.flv
ls -l clip.flv
