"""A chaos run: bursts of jobs under faults, against the service run the way the pod runs it.

    make chaos ARGS="--fault worker-kill --jobs 20"
    uv run python tests/service/chaos [--fault NAME ...] [--jobs 50] [--clients 8] [--scale 3]

For each fault (faults.py: Redis SIGKILL and restart, Redis SIGSTOP 40 s, PostgreSQL stopped
15 s, a worker SIGKILLed mid-job, its pool child SIGKILLed mid-job, S3 refusing connections
20 s, S3 hung 40 s) a fresh pod (pod.py: nginx in front of uWSGI, two workers, the reconciler
once a minute, the kubelet's probes and restarts, kubelet.py) gets a burst of jobs from several
clients, the fault once half of it is accepted, and the run waits for every job to end. It reports per fault
(harness.py): jobs submitted, accepted, refused (by status), ended done or failed, stuck (not
ended by the deadline), duplicated (compressed to the end more than once, from the workers'
logs), redelivered (started more than once), the restarts and which of them restarted a healthy
worker (pod.worker_was_healthy), and the seconds from the fault's end to the last job's end.
The run passes when every fault has 0 stuck, 0 duplicated, no restart of a healthy worker and
its last job ended within 180 s of the fault's end; the exit status says so. The table is printed
as markdown and written as JSON.
"""
