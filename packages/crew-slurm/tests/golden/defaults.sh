#!/bin/bash
#SBATCH --job-name=crew-unit
#SBATCH --array=1-1
#SBATCH --output=/shared/crew/logs/crew-unit_%A_%a.out
#SBATCH --error=/shared/crew/logs/crew-unit_%A_%a.err
exec python3 -m crew.worker tcp://10.0.0.1:5700 --controller c0 --launch 1
