"""otari-batch-grpc: the otari gateway's Batch API behind a typed, streaming gRPC contract.

otari_batch_grpc.v1         stubs generated from protos/ (the contract)
otari_batch_grpc.server     the gRPC service (`otari-batch-grpc`)
otari_batch_grpc.simulator  a gateway simulator (the `make run` default upstream, and the tests')
otari_batch_grpc.client     the Python client
"""
