module platform/schemas

go 1.24
