module udl.example/gateway-journey

go 1.22

require udl.example/client v0.0.0

replace udl.example/client => ../../../clients/go
