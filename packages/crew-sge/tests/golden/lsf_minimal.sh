#!/bin/bash
#BSUB -J "crew-demo[1-3]"
#BSUB -o /shared/crew/logs/crew-demo_%J_%I.out
#BSUB -e /shared/crew/logs/crew-demo_%J_%I.err
exec /usr/bin/python3 -m crew.worker tcp://10.0.0.1:5555 --controller abc123 --launch 1 --seconds-timeout 60 --secret-file /shared/crew/crew-secret-abc123
