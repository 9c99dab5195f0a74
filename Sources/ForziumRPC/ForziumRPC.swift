// ForziumRPC
