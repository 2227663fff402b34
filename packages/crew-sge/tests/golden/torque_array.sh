#!/bin/bash
#PBS -N crew-demo
#PBS -t 1-3
#PBS -S /bin/bash
#PBS -o /shared/crew/logs/
#PBS -e /shared/crew/logs/
#PBS -q batch
#PBS -A proj01
#PBS -l nodes=1:ppn=4
#PBS -l mem=8192mb
#PBS -l walltime=48:00:00
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
