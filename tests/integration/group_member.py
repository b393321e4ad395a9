"""A consumer-group member for tests: processes records by appending their values to a file,
then commits each one (commit after process). Runs until SIGTERM (clean close, LeaveGroup)
or until killed.

    group_member.py BOOTSTRAP TOPIC GROUP OUT_FILE
"""
import signal
import sys

from confluent_kafka import Consumer

bootstrap, topic, group, out_path = sys.argv[1:5]
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
c.subscribe([topic])
with open(out_path, "a", buffering=1) as out:
    while not stop:
        msg = c.poll(0.2)
        if msg is None or msg.error() is not None:
            continue
        out.write(msg.value().decode() + "\n")
        out.flush()
        c.commit(message=msg, asynchronous=False)
c.close()
