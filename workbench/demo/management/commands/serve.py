"""`manage.py serve`: migrate, set up the demo, then run the web server and a Celery worker until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from workbench.demo.services import admin_account_ensure, demo_generation_ensure, demo_model_ensure, demo_project_ensure


class Command(BaseCommand):
    help = "Start the whole workbench on one machine: web server and Celery worker with beat (Ctrl-C stops both)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo project and sample documents.")
        parser.add_argument("--demo-model-steps", type=int, default=500, help="Training steps of the demo model.")

    def handle(self, *args, host, port, no_demo, demo_model_steps, **options):
        say = lambda line: (self.stdout.write(line), self.stdout.flush())  # noqa: E731
        say(f"Preparing the database ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}) ...")
        call_command("migrate", interactive=False, verbosity=0)
        password = admin_account_ensure()
        if not no_demo:
            say("Loading the demo project and its sample documents ...")
            project = demo_project_ensure()
            model_dir = demo_model_ensure(steps=demo_model_steps, log=say)
            if model_dir is None:
                self.stdout.write("torch is not installed: the demo project has no model (pip install '.[gpu]').")
            elif run := demo_generation_ensure(project=project, model_dir=model_dir):
                self.stdout.write(f"Started generation run {run.pk} on the demo project with the demo model.")
        say("Starting the web server and a Celery worker ...")
        python = sys.executable
        env = os.environ.copy()
        children = [
            subprocess.Popen(
                # -B: the worker also runs Celery beat, which sends the dispatch sweep (a batch whose worker died is
                # queued again).
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "workbench",
                    "worker",
                    "-B",
                    "-Q",
                    "default,gpu",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "INFO",
                    "-n",
                    "workbench@%h",
                ],
                env=env,
            ),
            subprocess.Popen(
                [python, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"],
                env=env,
                cwd=settings.BASE_DIR,
            ),
        ]
        url = f"http://{host}:{port}/"
        lines = [
            "",
            f"Genstruct Workbench is starting at {url}",
            f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}   broker: {settings.CELERY_BROKER_URL}",
        ]
        if password:
            lines.append(f"  admin account: admin / {password}   (shown once; change it in the admin)")
        else:
            lines.append("  admin account: admin (password was shown at the first start)")
        lines.append("  Ctrl-C stops the web server and the worker.")
        self.stdout.write("\n".join(lines) + "\n")
        self.stdout.flush()

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed and not stopping:
            raise SystemExit(f"A workbench process exited unexpectedly (exit {failed[0].returncode}).")
