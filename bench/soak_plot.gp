# The soak's samples over time: RSS, descriptors and CPU of the hub, the warm-up shaded.
#   gnuplot -e "csv='samples.csv'; png='soak.png'; warmup=60; title='river-relay soak'" bench/soak_plot.gp
# csv columns: t_s,rss_kib,fds,own_fds,cpu_ticks,cpu_pct,conns,queued_kib
if (!exists("csv")) csv = 'samples.csv'
if (!exists("png")) png = 'soak.png'
if (!exists("warmup")) warmup = 0
if (!exists("title")) title = 'river-relay soak'

set datafile separator ','
set terminal pngcairo size 1200,900 font ',10'
set output png
set multiplot layout 3,1 title title
set grid
set xlabel 'time (s)'
set key below horizontal
set style rect fc rgb '#eeeeee' fs solid noborder
set object 1 rect from graph 0, graph 0 to first warmup, graph 1 behind

set ylabel 'RSS (MiB)'
set yrange [0:*]
plot csv using 1:($2/1024) skip 1 with linespoints lw 2 pt 7 ps 0.5 title 'RSS', \
     csv using 1:($8/1024) skip 1 with lines lw 1 dt 2 title "watchers' queues (/stats, summed)"

set ylabel 'descriptors'
plot csv using 1:3 skip 1 with linespoints lw 2 pt 7 ps 0.5 title 'open fds', \
     csv using 1:7 skip 1 with lines lw 1 dt 2 title 'connections (/stats)', \
     csv using 1:4 skip 1 with lines lw 1 title 'fds that are not sockets'

set ylabel 'CPU (% of a core)'
plot csv using 1:6 skip 1 with linespoints lw 2 pt 7 ps 0.5 title 'CPU (utime+stime)'
unset multiplot
