module udl.example/client

go 1.22
