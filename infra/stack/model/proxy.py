"""What the web pod's buffering proxy (nginx, rendered by stack/workloads/proxy.py) needs on its node."""

# nginx itself: one worker process holds thousands of idle or slow connections (a few KiB each,
# plus up to BODY_BUFFER_BYTES of body in memory); the CPU is header parsing and copying.
CPU_MILLICORES = 100
MEMORY_MIB = 64
# Bodies up to this stay in nginx's memory; larger ones go to the emptyDir (TEMP_DIR).
BODY_BUFFER_BYTES = 128 * 1024
