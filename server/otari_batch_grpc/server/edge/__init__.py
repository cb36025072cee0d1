"""The gRPC edge: BatchService's handlers, every call's way in and out (decoding, errors as gRPC statuses,
its log line), request validation, credentials, per-caller limits, reflection.
"""
