// Command hello is the bare Go binary P5 measures ecrpush's start-up against: a process that
// prints one line and exits, with nothing but the runtime and fmt to initialise.
package main

import "fmt"

func main() { fmt.Println("hello") }
