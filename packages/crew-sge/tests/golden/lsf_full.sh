#!/bin/bash
#BSUB -J "crew-demo[1-5]"
#BSUB -o /shared/logs/out_%J_%I.txt
#BSUB -e /shared/logs/err_%J_%I.txt
#BSUB -cwd /scratch/work
#BSUB -q short
#BSUB -P genomics
#BSUB -n 2
#BSUB -M 4096MB
#BSUB -R "rusage[mem=1536MB] span[hosts=1]"
#BSUB -W 2:00
module load python/3.11
source /shared/venv/bin/activate
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
