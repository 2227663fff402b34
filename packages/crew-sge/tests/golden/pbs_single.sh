#!/bin/bash
#PBS -N crew-demo
#PBS -S /bin/bash
#PBS -o /shared/crew/logs/
#PBS -j oe
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
