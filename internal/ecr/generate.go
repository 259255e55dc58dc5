package ecr

//go:generate go run ./internal/genregions regions_gen.go
