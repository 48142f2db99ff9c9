// Command goagent is an empty Go program. The start baseline is measured on
// it: everything it calls is what the Go runtime needs from execve to main
// and from main to exit.
package main

func main() {}
