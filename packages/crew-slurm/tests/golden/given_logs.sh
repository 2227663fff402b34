#!/bin/bash
#SBATCH --job-name=my-jobs
#SBATCH --array=1-3
#SBATCH --output=/logs/%x-%A-%a.txt
#SBATCH --error=/logs/%x-%A-%a.txt
#SBATCH --mem-per-cpu=308M
#SBATCH --gres=gpu:a100:1
exec python3 -m crew.worker tcp://10.0.0.1:5700 --controller c0 --launch 1
