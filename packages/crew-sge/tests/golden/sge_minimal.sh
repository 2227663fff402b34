#!/bin/bash
#$ -N crew-demo
#$ -t 1-4
#$ -S /bin/bash
#$ -o /shared/crew/logs/crew-demo_$JOB_ID.$TASK_ID.out
#$ -e /shared/crew/logs/crew-demo_$JOB_ID.$TASK_ID.err
#$ -cwd
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
