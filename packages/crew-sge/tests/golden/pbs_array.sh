#!/bin/bash
#PBS -N crew-demo
#PBS -J 1-4
#PBS -S /bin/bash
#PBS -o /shared/crew/logs/
#PBS -e /shared/crew/logs/
#PBS -q workq
#PBS -A proj01
#PBS -l select=1:ncpus=2:mem=512mb
#PBS -l walltime=01:15:00
cd "$PBS_O_WORKDIR"
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
