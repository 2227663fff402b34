#!/bin/bash
#$ -N analysis
#$ -t 1-3
#$ -S /bin/bash
#$ -o /shared/logs/worker_$JOB_ID.$TASK_ID.log
#$ -j y
#$ -wd /scratch/work
#$ -V
#$ -q all.q
#$ -P genomics
#$ -pe smp 4
#$ -l h_rss=2560M
#$ -l m_mem_free=1024M
#$ -l gpu=1
#$ -l h_rt=01:00:00
#$ -notify
module load python/3.11
source /shared/venv/bin/activate
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
