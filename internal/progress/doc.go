// Package progress draws byte progress for long transfers: on a terminal one line redrawn in
// place for all running tasks, elsewhere (CI logs) one line per task every few seconds. It only
// samples counters the caller owns; it never measures anything itself and never blocks a transfer.
package progress
