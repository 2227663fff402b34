#!/bin/bash
#SBATCH --job-name=crew-analysis
#SBATCH --array=1-8
#SBATCH --output=/shared/crew/logs/crew-analysis_%A_%a.out
#SBATCH --error=/shared/crew/logs/crew-analysis_%A_%a.err
#SBATCH --partition=short
#SBATCH --account=lab
#SBATCH --qos=normal
#SBATCH --time=91
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=2
#SBATCH --mem=1536M
#SBATCH --gres=gpu:2
#SBATCH --constraint=avx2&intel
#SBATCH --exclusive
#SBATCH --mail-type=NONE
module load python/3.11
source /shared/venv/bin/activate
exec python3 -m crew.worker tcp://10.0.0.1:5700 --controller c0 --launch 1
