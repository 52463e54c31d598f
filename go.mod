module github.com/nftbridge/nftbridge

go 1.25.0
